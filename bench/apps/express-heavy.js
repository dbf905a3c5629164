// Express 5 app without any protection: `node bench/apps/express-heavy.js` (PORT=3000).
import express from 'express'
import { mountRoutes, listen } from './routes.js'

const app = express()
mountRoutes(app)
listen(app)
