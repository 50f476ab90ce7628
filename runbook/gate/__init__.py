"""The verification gate: snippets of the rendered pages, checked statically, run on moto, judged."""
