"""A seeded, deterministic synthetic alliance, loaded through the hub's own storage path.

Who is who comes from data/demo/alliance.yaml (fictional names only); the figures are drawn
from the seed with the magnitudes of the real field, and organisations' figures are linked
through the flows between them (reports, notices, referrals), so the hub's completeness,
reconciliation, target and disclosure features have realistic material to work on.
"""

from hub.demo.generate import DemoSubmission, GeneratedAlliance, generate_alliance
from hub.demo.load import DemoReport, load_demo_alliance

__all__ = ["DemoReport", "DemoSubmission", "GeneratedAlliance", "generate_alliance", "load_demo_alliance"]
