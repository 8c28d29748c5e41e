"""transferability: measure, predict and control knowledge and adversarial transferability.

Importing the package registers every model, attack, dataset, estimator (the
adversarial ``"models"`` estimators included), study and job kind, so nothing depends on
import order.
"""

__version__ = "0.1.0"

from . import adversarial as _adversarial  # noqa: E402,F401  (registers the "models" scores)
from .attacks import create_attack, list_attacks, register_attack  # noqa: E402
from .data import list_datasets, load_dataset, register_dataset  # noqa: E402
from .estimators import get_estimator, list_estimators, register_estimator  # noqa: E402
from .models import create_model, list_models  # noqa: E402
from .studies import get_study, list_studies, register_study  # noqa: E402

# The studies register themselves and their job kinds (the zoo's "train" among them), in the
# order of the HTML report.
# isort: off
from .studies import adv_knowledge as _adv_knowledge  # noqa: E402,F401
from .studies import surrogates as _surrogates  # noqa: E402,F401
from .studies import robust_transfer as _robust_transfer  # noqa: E402,F401
from .studies import benchmark as _benchmark  # noqa: E402,F401
from .studies import audit as _audit  # noqa: E402,F401
from .studies import theory as _theory  # noqa: E402,F401
from .studies import surrogate_choice as _surrogate_choice  # noqa: E402,F401
# isort: on

__all__ = ["__version__", "create_model", "list_models", "create_attack", "list_attacks",
           "register_attack", "load_dataset", "list_datasets", "register_dataset",
           "get_estimator", "list_estimators", "register_estimator", "get_study",
           "list_studies", "register_study"]
