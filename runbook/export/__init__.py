"""Files made from the Catalog for other tools: CloudWatch alarm definitions, atomic writes."""
