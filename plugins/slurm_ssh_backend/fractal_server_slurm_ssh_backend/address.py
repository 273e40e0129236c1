"""The `ssh_host` user setting: a host name or address, maybe with a port."""

DEFAULT_PORT = 22


def parse_ssh_host(value: str) -> tuple[str, int]:
    """`host`, `host:port`, `[address]:port` or a bare IPv6 address -> (host, port).

    Raises ValueError for an empty host or a port that is not a number in 1-65535.
    """
    value = value.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"Invalid SSH host '{value}': expected [address] or [address]:port.")
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, None  # a host name, or an IPv6 address without a port
    if not host:
        raise ValueError(f"Invalid SSH host '{value}': no host name.")
    if port is None:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"Invalid SSH host '{value}': the port must be a number from 1 to 65535.")
    return host, int(port)
