"""transferability: measure, predict and control knowledge and adversarial transferability."""

__version__ = "0.1.0"
