"""TorchServe handlers for stylekit style packages."""
