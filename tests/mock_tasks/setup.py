"""A dependency-free Fractal task package used by the tests (built into a wheel by them)."""
from setuptools import setup

setup(
    name="fractal-tasks-mock",
    version="0.0.1",
    packages=["fractal_tasks_mock"],
    package_data={"fractal_tasks_mock": ["__FRACTAL_MANIFEST__.json"]},
)
