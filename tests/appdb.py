"""The database of the in-process test app, for fixtures of any scope."""
from fractal_server.auth.accounts import create_user, ensure_default_group
from fractal_server.auth.tokens import issue_token
from fractal_server.db import db


def reset_database(app) -> None:
    """Empty every table (ids start at 1 again) and recreate the group `All`.

    DELETE, not TRUNCATE: much faster on tables this small.
    """
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
            if "id" in table.columns:
                db.session.execute(
                    db.text("SELECT setval(pg_get_serial_sequence(:name, 'id'), 1, false)"),
                    {"name": table.name},
                )
        db.session.commit()
        ensure_default_group()


def new_user(app, email: str = "user@example.org", password: str = "password", **flags) -> tuple[int, dict]:
    """Create a user; answer `(user_id, headers with a bearer token)`."""
    with app.app_context():
        user = create_user(email, password, **flags)
        return user.id, {"Authorization": f"Bearer {issue_token(user, 3600)}"}
