"""Output targets. Each module maps the model to one client's vocabulary, renders its templates and proves
every file by parsing it back. `TARGETS` is the registry the build walks, in this order."""

from __future__ import annotations

from generator.targets.base import OutputFile, RenderContext, Target


def target_classes() -> dict[str, type[Target]]:
    from generator.targets.apple import AppleTarget

    classes: dict[str, type[Target]] = {"apple": AppleTarget}
    try:
        from generator.targets.thunderbird import ThunderbirdTarget

        classes["thunderbird"] = ThunderbirdTarget
    except ImportError:  # pragma: no cover - target not built yet in this checkout
        pass
    try:
        from generator.targets.outlook import OutlookTarget

        classes["outlook"] = OutlookTarget
    except ImportError:  # pragma: no cover
        pass
    return classes


__all__ = ["OutputFile", "RenderContext", "Target", "target_classes"]
