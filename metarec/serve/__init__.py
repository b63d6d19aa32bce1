"""HTTP serving of a trained model (FastAPI): see `metarec.serve.app`."""
