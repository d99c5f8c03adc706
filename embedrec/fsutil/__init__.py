"""Everything embedrec writes or reads on disk goes through here; the package holds no names of its own.

Imports point downward in this order: ``files`` (one durable file, bounded reads, disk errors) <- ``integrity``
(checksums, manifest seals and fields) and ``locks`` (writer locks, reader holds) <- ``generations`` (``current``
-> a versioned folder) <- ``outputs`` (a folder or file a user names, ``--overwrite``).
"""
