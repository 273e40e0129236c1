"""Password hashing (bcrypt): hashes are never reversible and never logged."""
import bcrypt

MAX_BCRYPT_BYTES = 72


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_encode(password), bcrypt.gensalt()).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_encode(password), hashed.encode())
    except ValueError:
        return False


def _encode(password: str) -> bytes:
    """bcrypt reads at most 72 bytes; longer passwords are cut, as bcrypt always did."""
    return password.encode()[:MAX_BCRYPT_BYTES]
