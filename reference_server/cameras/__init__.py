"""Camera inventory for the reference center: national CCTV dataset import/export, synthetic
inventories and nearest-camera search. Independent of the wire protocol."""
