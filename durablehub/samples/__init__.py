"""Sample apps: ``durablehub worker durablehub.samples.workflows:app`` runs them."""
