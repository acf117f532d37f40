"""Profile pictures: uploaded from the settings page, stored in PostgreSQL, served by any
instance under a URL that changes with the picture."""
