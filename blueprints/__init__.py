"""HTTP layer: one blueprint per resource, with the marshmallow schemas of its wire format."""
