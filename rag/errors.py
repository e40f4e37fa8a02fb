"""The project's error hierarchy: the CLI and HTTP layers map these to exit and status codes."""


class RagError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(RagError):
    """A setting has a bad value (the message names the setting and the value)."""


class EmbedderError(RagError):
    """An embedding model cannot be found, converted or loaded."""


class LoaderError(RagError):
    """A document cannot be read (empty, binary, undecodable, too large)."""


class IndexNotFoundError(RagError):
    """No index exists at the given directory."""


class IndexCorruptError(RagError):
    """An index exists but its files disagree with each other or with the manifest."""


class IndexMismatchError(RagError):
    """An index was built with another embedder or chunking than the one requested."""


class IndexLockedError(RagError):
    """Another process is writing to the same index."""


class DocumentNotFoundError(RagError):
    """A document id is not in the index."""


class KnowledgeBaseNotFoundError(RagError):
    """A knowledge base name is not one this installation (or server) has."""
