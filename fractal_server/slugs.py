"""Names made safe for folders: lower case, punctuation and spaces become `_`."""
import string

_REPLACED = set(string.punctuation) | set(string.whitespace)


def slugify(name: str) -> str:
    return "".join("_" if char in _REPLACED else char for char in name.lower())
