"""Output targets. Each module maps the model to one client's vocabulary, renders its templates and proves
every file by parsing it back. `target_classes()` is the registry the build walks, in this order."""

from __future__ import annotations

from generator.targets.base import OutputFile, RenderContext, Target


def target_classes() -> dict[str, type[Target]]:
    # Imported here, not at module level: the target modules import generator.targets.base themselves.
    from generator.targets.apple import AppleTarget
    from generator.targets.guide import GuideTarget
    from generator.targets.message import MessageTarget
    from generator.targets.outlook import OutlookTarget
    from generator.targets.thunderbird import ThunderbirdTarget

    return {"apple": AppleTarget, "thunderbird": ThunderbirdTarget, "outlook": OutlookTarget,
            "guide": GuideTarget, "message": MessageTarget}


__all__ = ["OutputFile", "RenderContext", "Target", "target_classes"]
