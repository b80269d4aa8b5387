"""The golden records are generated projects with tests of their own: not collected here."""

collect_ignore_glob = ["*/*"]
