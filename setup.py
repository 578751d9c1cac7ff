from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="stemstream",
    version="0.1.0",
    description="Live, low-latency music stem isolation with a causal streaming RQ-VAE separator",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # rt/midi.py reads TOML with the standard library's tomllib
    packages=find_packages(include=["model", "model.*", "rt", "rt.*", "plugin_host", "plugin_host.*",
                                    "latency", "latency.*"]),
    py_modules=["stemstream_cli"],
    package_data={"model": ["weights/*/*.json", "weights/*/*.safetensors", "weights/*/*.md"]},
    install_requires=[
        # torch is pinned by scripts/install.sh to the CPU build on disk; any recent one works
        "torch>=2.4",
        "numpy>=1.24",
        "numba>=0.59",
        "pedalboard>=0.9.8",
        "sounddevice>=0.4.6",
        "python-rtmidi>=1.5",
        "soxr>=0.3.7",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "PyYAML>=6",
        "mido>=1.3",
        "JACK-Client>=0.5",
        "matplotlib>=3.7",
        "scipy>=1.10",
        "rich>=13",  # stemstream live's terminal control surface (rt/tui.py)
        "soundfile>=0.12",  # model.training.data, rt's file-driven live, the renderer
        "museval>=0.4",     # stemstream eval (BSSEval SDR)
    ],
    # every import the installed commands make is above: .ci/run installs the package into a clean
    # venv (not editable) and runs each subcommand, so a missing one fails CI
    # ray: `stemstream separate --ray ADDRESS` runs catalogues on a Ray cluster (a 79 MB wheel)
    extras_require={"test": ["pytest>=7", "hypothesis>=6"], "ray": ["ray>=2.9"]},
    entry_points={"console_scripts": ["stemstream=stemstream_cli:main"]},
)
