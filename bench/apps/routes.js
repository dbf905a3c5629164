// The two routes of the "classic overload case", shared by both app files.
// GET /heavy blocks the event loop (about 40 ms on a 2020s server core);
// GET /light answers a small JSON at once.
export const HEAVY_N = 50_000_000

export function heavySum () {
  let sum = 0
  for (let i = 0; i <= HEAVY_N; i++) sum += i
  return sum
}

export function mountRoutes (app) {
  app.get('/heavy', (req, res) => {
    res.json({ sum: heavySum() })
  })
  app.get('/light', (req, res) => {
    res.json({ ok: true, pid: process.pid })
  })
}

export function listen (app) {
  const port = Number(process.env.PORT ?? 3000)
  return app.listen(port, '127.0.0.1')
}
