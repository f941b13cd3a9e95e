"""Where the repo's config tree and shipped models live (the apps run from an editable install)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"
MODELS_DIR = REPO_ROOT / "models"
