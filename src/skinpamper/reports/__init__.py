"""Figures and self-contained HTML pages: dataset exploration, run reports and evaluation reports."""
