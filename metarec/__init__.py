"""metarec: few-shot recommendation for new users by MAML over language-model text embeddings."""

__version__ = "0.1.0"
