"""Everything on disk: FITS datasets, survey catalogs and the Zarr v3 result store (no JAX, no Ray).

    errors      DatasetError, CatalogError, StoreError
    datasets    load_imaging, read_shapes (headers), validate_imaging, write_imaging, write_imaging_mef, ImagingData
    catalog     read_catalog, write_catalog, flatten_params, unflatten_params, Catalog, CatalogEntry
    schema      SCHEMA_VERSION, Status, TERMS, ArraySpec, BOOKKEEPING, result_specs
    store       ResultStore (create / open / open_existing, write_block, pending_blocks, record_driver_run, ...)
    lease       DriverLease (acquire, heartbeat, release)
    reader      open_results -> Results (table, array, lens, attrs)
    locations   local paths and fsspec URLs
"""
