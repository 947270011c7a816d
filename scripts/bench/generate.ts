// The benchmarks' database: one table of 1 KiB random `bytea` rows. 1 KiB stays below the TOAST
// threshold, so nothing compresses them (neither TOAST nor pg_dump's gzip nor zstd): the bytes a
// backup moves are the bytes the floor copies. Shared by bench:backup and bench:rehearsal.
import { Cluster } from "../../test/pg";

/** Fills `db` (owned by `owner`) with about `gib` GiB of incompressible rows; returns its pretty size. */
export function generateIncompressible(cluster: Pick<Cluster, "psql">, db: string, owner: string, gib: number): { rows: number; size: string } {
  const rows = Math.round(gib * 1024 * 1024);
  console.log(`generating ${gib} GiB of incompressible rows (${rows} x 1 KiB) in ${db}…`);
  cluster.psql("CREATE EXTENSION IF NOT EXISTS pgcrypto", { db });
  cluster.psql(`CREATE TABLE blobs (id bigserial PRIMARY KEY, data bytea NOT NULL); ALTER TABLE blobs OWNER TO ${owner}`, { db });
  for (let done = 0; done < rows; done += 100_000) {
    cluster.psql(`INSERT INTO blobs (data) SELECT gen_random_bytes(1024) FROM generate_series(1, ${Math.min(100_000, rows - done)})`, { db });
  }
  cluster.psql("VACUUM ANALYZE blobs", { db });
  cluster.psql("CHECKPOINT");
  const size = cluster.psql(`SELECT pg_size_pretty(pg_database_size('${db}'))`);
  console.log(`database ${db}: ${size}`);
  return { rows, size };
}
