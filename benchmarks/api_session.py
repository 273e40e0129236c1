"""The HTTP session the benchmarks share: logs in, and again when the token expires."""
import requests


class Api:
    def __init__(self, base_url: str, user: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.user, self.password = user, password
        self.session = requests.Session()
        self.login()

    def login(self) -> None:
        response = self.session.post(
            f"{self.base_url}/auth/token/login/", data={"username": self.user, "password": self.password}
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> requests.Response:
        response = self.session.request(method, self.base_url + path, timeout=120, **kwargs)
        if response.status_code == 401:
            self.login()
            response = self.session.request(method, self.base_url + path, timeout=120, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def post(self, path: str, body: dict, expect: int = 201) -> dict:
        return self.call("POST", path, expect, json=body).json()
