"""
The HTTP API: L{site.build_site} builds the whole site, a lean check resource
(L{check_resource}) in front of the Klein app for every other route
(L{api}), rendering Go-compatible JSON (L{gojson}).
"""
