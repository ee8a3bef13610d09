-- One tenant's orders table, for examples/fleet-orders-cents.yaml (README "A fleet").
CREATE TABLE IF NOT EXISTS public.orders (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, status text NOT NULL);
INSERT INTO public.orders SELECT g, round((g % 1000) * 1.37, 2), 'paid' FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING;
