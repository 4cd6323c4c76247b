"""Deep joint source-channel coding: the ``deepjscc`` codec and the ``diffjscc`` diffusion refiner."""
