"""Item/user representations, the adaptable scoring head, and the MeLU network."""
