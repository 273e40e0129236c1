"""The core distribution: the Flask application, its data model and `fractalctl`.

Runner backends are separate distributions under `plugins/`; the core never
imports them, it finds them through the `fractal_server` entry-point group.
"""
from setuptools import find_packages, setup

setup(
    name="fractal-server",
    version="2.9.2",
    description="Server of the Fractal bioimage-analysis platform",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["fractal_server", "fractal_server.*"]),
    package_data={"fractal_server": ["migrations/*", "migrations/versions/*.py"]},
    install_requires=[
        "flask>=3.1,<4",
        "flask-sqlalchemy>=3.1,<4",
        "flask-migrate>=4.1,<5",
        "flask-jwt-extended>=4.7,<5",
        "authlib>=1.3,<2",
        "psycopg[binary]>=3.1,<4",
        "pluggy>=1.5,<2",
        "waitress>=3,<4",
        "hupper>=1.12,<2",
        "pydantic[email]>=2.7,<3",
        "python-dotenv>=1,<2",
        "bcrypt>=4,<6",
        "requests>=2.31,<3",
    ],
    extras_require={"gunicorn": ["gunicorn>=22"]},
    entry_points={"console_scripts": ["fractalctl=fractal_server.cli:main"]},
)
