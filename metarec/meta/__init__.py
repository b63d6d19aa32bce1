"""Meta-learning: users as MAML tasks, two backends (functional, learn2learn), trainer, recommender."""
