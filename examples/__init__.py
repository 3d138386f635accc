"""Example applications built on TandemKV (each in its own folder, with a README)."""
