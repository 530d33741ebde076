"""
freno's configuration: the JSON format of the original freno, loaded once and
validated before anything starts.

- L{freno.config.model}: immutable attrs classes, with inheritance already resolved.
- L{freno.config.loader}: JSON reading, C{${ENV}} expansion, validation, errors.
"""
