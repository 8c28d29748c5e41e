"""transferability: measure, predict and control knowledge and adversarial transferability.

Importing the package registers every model, attack, dataset and estimator (the
adversarial ``"models"`` estimators included), so nothing depends on import order.
"""

__version__ = "0.1.0"

from . import adversarial as _adversarial  # noqa: E402,F401  (registers the "models" scores)
from .attacks import create_attack, list_attacks  # noqa: E402
from .data import list_datasets, load_dataset  # noqa: E402
from .estimators import get_estimator, list_estimators  # noqa: E402
from .models import create_model, list_models  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "create_attack", "list_attacks",
           "load_dataset", "list_datasets", "get_estimator", "list_estimators"]
