"""The execution tier's sandbox: an isolated worker holding moto that runs each snippet."""
