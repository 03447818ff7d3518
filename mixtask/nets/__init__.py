"""The networks: the paper's FiLM network (`film`), the other conditioning schemes it is compared with, the
registry that builds any of them from a `ModelConfig`, and what each can do (`capabilities`)."""
