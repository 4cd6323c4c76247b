"""Physical layer: bits <-> symbols <-> channel, built from Sionna 2.2 blocks.

Modules (imported explicitly; importing ``phy`` loads nothing heavy):

* `phy.specs`: frozen structure specs (`CodingSpec`, `ChannelSpec`, `OfdmSpec`) and the
  closed name lists (`MODULATIONS`, `CHANNELS`, `CODES`, `DECODERS`).
* `phy.modulation`: Gray constellations by name and the exact hard slicer.
* `phy.link`: `PhyLink` (digital call, `analog` path, `count_errors`).
* `phy.ber`: Monte-Carlo engine (`simulate_point`, `simulate_curve`, `BerPoint`).
* `phy.theory`: closed-form BER, capacities, normal approximation.
* `phy.stats`: binomial confidence intervals.
* `phy.ldpc_fast`: fast CPU LDPC decoder (optional; used by ``decoder="auto"|"fast"``).
"""
