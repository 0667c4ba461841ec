"""Networks: I2I-LR's generator and discriminator and the layers they are built from (no training logic here)."""
