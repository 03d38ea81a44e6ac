"""A ``policies.models.ModelCache`` made on first use: torch and BoTorch are imported only by a campaign
whose policy or targets fit a GP (about 1.5 s of CPU at start-up that a SAS or XRD campaign, or a
resume of one, need not spend)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.models import ModelCache


class LazyModelCache:
    """Stands for a ``ModelCache(**options)``, made (its modules imported) when first used."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._cache: ModelCache | None = None

    def __getattr__(self, name: str) -> Any:  # only for what this object does not have: the cache's own
        if self._cache is None:
            from policies.models import ModelCache

            self._cache = ModelCache(**self._options)
        return getattr(self._cache, name)
