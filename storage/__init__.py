"""Everything on disk: FITS datasets, survey catalogs and the Zarr v3 result store (no JAX, no Ray).

    errors      DatasetError, DatasetUnavailable, CatalogError, StoreError; classify -> Fault, retry_transient
    datasets    load_imaging, read_shapes (headers), dataset_fingerprint, validate_imaging, write_imaging,
                write_imaging_mef, ImagingData
    euclid      the Euclid MER cutout layout (band extensions, info.json, mask_extra_galaxies.fits)
    pixel_scale a dataset's pixel scale from the catalog, info.json, PIXSCALE or the WCS
    fits_io     fetch a file's bytes, then parse its HDUs in memory (bounded, extent-checked, no warning state)
    catalog     read_catalog, write_catalog, flatten_params, unflatten_params, Catalog, CatalogEntry
    schema      SCHEMA_VERSION, Status, TERMS, ArraySpec, BOOKKEEPING, result_specs
    store       ResultStore (create / open / open_existing, write_block, pending_blocks, status, record_driver_run,
                verify_blocks, reset_blocks, changed_inputs, ...)
    integrity   the per-dataset checksums and the check of one block
    lease       DriverLease (acquire, heartbeat, release), read_lease, holder_is_dead
    reader      open_results -> Results (table, array, lens, attrs)
    locations   local paths and fsspec URLs
    zarr_io     Zarr plumbing of the store
"""
