"""A local Scalekit and a reference app: the emulator, the sample app, the demo stack."""
