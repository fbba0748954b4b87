"""Dashboard pages, loaded by Dash (``use_pages``) when ``create_app`` runs; do not import them before."""
