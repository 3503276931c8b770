# LiteFury (RHS Research, XC7A100T-2L FGG484) pins of npmu_litefury, from the board's
# sample projects (RHSResearchLLC/NiteFury-and-LiteFury) and litex-boards.
#
# PCIe x1 on the M.2 connector's lane 0: GTP channel X0Y6 of quad 216, not the X0Y7 the
# Xilinx core picks by default (the board routes lanes differently). openXC7 finds the
# transceiver site from the pins.
set_property PACKAGE_PIN F6 [get_ports pcie_refclk_p]
set_property PACKAGE_PIN E6 [get_ports pcie_refclk_n]
set_property PACKAGE_PIN B10 [get_ports pcie_rx_p]
set_property PACKAGE_PIN A10 [get_ports pcie_rx_n]
set_property PACKAGE_PIN B6 [get_ports pcie_tx_p]
set_property PACKAGE_PIN A6 [get_ports pcie_tx_n]
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_p]

# PERST#, bank 35 at 3.3 V.
set_property PACKAGE_PIN J1 [get_ports pcie_reset_n]
set_property IOSTANDARD LVCMOS33 [get_ports pcie_reset_n]
set_property PULLUP true [get_ports pcie_reset_n]

# The four LEDs, lit low.
set_property PACKAGE_PIN G3 [get_ports {led_n[0]}]
set_property PACKAGE_PIN H3 [get_ports {led_n[1]}]
set_property PACKAGE_PIN G4 [get_ports {led_n[2]}]
set_property PACKAGE_PIN H4 [get_ports {led_n[3]}]
set_property IOSTANDARD LVCMOS33 [get_ports {led_n[0]}]
set_property DRIVE 8 [get_ports {led_n[0]}]
set_property IOSTANDARD LVCMOS33 [get_ports {led_n[1]}]
set_property DRIVE 8 [get_ports {led_n[1]}]
set_property IOSTANDARD LVCMOS33 [get_ports {led_n[2]}]
set_property DRIVE 8 [get_ports {led_n[2]}]
set_property IOSTANDARD LVCMOS33 [get_ports {led_n[3]}]
set_property DRIVE 8 [get_ports {led_n[3]}]

# Configuration from the quad SPI flash (nextpnr-xilinx ignores [current_design]
# properties; Vivado applies them).
set_property CONFIG_VOLTAGE 3.3 [current_design]
set_property CFGBVS VCCO [current_design]
set_property CONFIG_MODE SPIx4 [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4 [current_design]
set_property BITSTREAM.CONFIG.EXTMASTERCCLK_EN Div-1 [current_design]
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
