"""Text for items and users: templates (fields -> text), the HF encoder, the on-disk cache."""

from metarec.encoders.templates import TemplateConfig, item_texts, user_texts
from metarec.encoders.hf import EncoderConfig, TextEncoder
from metarec.encoders.cache import EmbeddingCache, default_cache_dir
from metarec.encoders.catalog import encode_catalog, encode_texts, item_embeddings, profile_vectors

__all__ = ["TemplateConfig", "item_texts", "user_texts", "EncoderConfig", "TextEncoder",
           "EmbeddingCache", "default_cache_dir", "encode_texts", "encode_catalog",
           "item_embeddings", "profile_vectors"]
