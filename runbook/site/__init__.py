"""The site: Catalog → Markdown, the one mkdocs build, and the link check of its HTML."""
