"""stylekit training: generators, loss networks, losses, trainer, export, pretrained importers.

Nothing here is imported on the stylize path; the SDK reads only the style packages it writes.
"""
