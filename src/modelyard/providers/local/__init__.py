"""Provider kind `local`: GGUF models run in-process by llama.cpp."""
