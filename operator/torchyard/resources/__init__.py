"""Pure builders: spec in, Kubernetes manifest (a plain dict) out. No API calls here."""
