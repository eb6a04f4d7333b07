/** Sends `count` GETs with at most `concurrency` in flight; resolves with the statuses seen. */
export async function hammer(
  count: number,
  concurrency: number,
  next: (i: number) => string | Request,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let i = 0;
  const worker = async () => {
    while (i < count) {
      const res = await fetch(next(i++));
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}
