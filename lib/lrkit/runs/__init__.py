"""Runs: ids, manifests, versioned artifacts, papermill execution, reports and comparisons."""
