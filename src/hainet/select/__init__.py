"""Model selection: rank stored configurations for a task, an agent or free text.

Layer 5: reads the store (or an analysis file), never calls a backend.
"""

from hainet.select.selector import load_analysis, select
from hainet.select.taxonomy import Taxonomy, load_taxonomy

__all__ = ["Taxonomy", "load_analysis", "load_taxonomy", "select"]
